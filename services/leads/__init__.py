"""Leads: capture, qualification, scoring, assignment and conversion into contacts, accounts and deals."""
