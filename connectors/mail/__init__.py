"""E-mail, piece by piece: the connector (`connectors/email.py`) and the parser
(`connectors/mail_parse.py`) are built from these modules.

    settings.py    a mailbox's options, encryption rules, TLS failures in words
    imap.py        one logged-in IMAP connection (aioimaplib) and IMAP's small formats
    keys.py        Message-IDs, In-Reply-To/References, the stable external id
    charset.py     charset guessing for bodies, header values and parameters
    headers.py     the parser, decoded headers, addresses, parameters, the mail's date
    html.py        HTML mail as readable text
    fold.py        where quoted history and the signature start
    automation.py  auto-replies, bounces, list and group rewrites of From
    tnef.py        Outlook's winmail.dat
    mailbox.py     Maildir and mbox files for the import

Like every connector module, none of them imports the store, the core or the window.
"""
