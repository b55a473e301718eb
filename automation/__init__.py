"""Automated reviewers: rules banks, classifiers and chat models that judge items like people.

A policy declares them (`automated_reviewers:`); each answers an item with a label, a confidence
and a rationale, or with nothing (no rule matched, an error, a timeout, an answer that does not
parse, a budget spent), and an item without an answer goes to a person: never a silent
decision. This package imports only the core; what it decides reaches labeling and monitoring
through the lake.
"""
