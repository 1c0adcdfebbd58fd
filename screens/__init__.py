"""The Textual screens and the app. Imports here stay light: panes load on first visit."""
