"""Every text a person reads (Jinja2 templates) and the document templates.

A package only so that a regular (non-editable) install ships these files.
"""
