"""A stateful local Salesforce org served over HTTPS, driven unmodified by simple-salesforce.

Run it with ``python -m salesforce_emulator``; see README.md in this folder.
"""
