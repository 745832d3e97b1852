"""`imagescope browse`: an interactive, waste-first view of an image (Textual, the `tui`
extra). `model` and `content` hold what it shows and need no terminal."""
