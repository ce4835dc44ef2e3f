"""SOP bot: runs a Permenpan-RB style SOP through Telegram."""
