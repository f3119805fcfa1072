"""Outgoing mail: SMTP submission (``smtp``) and the request emails (``request_mail``)."""
