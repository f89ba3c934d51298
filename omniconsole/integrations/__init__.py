"""Integrations with other systems (issue #22): webhooks out (`webhooks`), the CRM's record in
the customer card (`crm`), and "may we contact this customer first?" (`contact`)."""
