"""SFT data: loading files into conversations, quality checks, cleaning, and the chat-template view
the model trains on. Importing this package is cheap; heavy libraries load inside the functions."""
