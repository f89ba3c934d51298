"""Answers: the shared library of canned answers, knowledge-base articles and operator scripts
(issue #16), and the one retrieval engine that the window's picker and suggestions and the bot
use. Its tables and SQL are in `omniconsole.store.answers`; files are read and written by
`library`, placeholders filled by `placeholders`, scripts parsed by `scripts`, searched by
`engine`, rendered per channel by `render`.
"""
