"""Moved to `omniconsole.bench.mail`; this name stays for code that imports it from here."""

from omniconsole.bench.mail import *  # noqa: F401,F403
from omniconsole.bench.mail import build_corpus, main  # noqa: F401
