"""The training room (`sopbot demo`): the real bot against the built-in Bot
API server, a made-up office, a fast clock, a chat page in the browser and
an autoplay of the whole SOP. See room.py, web.py, autoplay.py."""
