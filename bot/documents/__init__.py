"""Documents the bot drafts for the SOP's steps."""
