"""The book's experiments: what exists to demonstrate a chapter, one module per chapter or topic.

Each module holds one chapter's demonstrations and figures as tested functions, with small
defaults for the book and full-size settings for ``make bench``. Experiments may import the whole
library; the library never imports them (``tests/test_architecture.py`` walks the imports). The
figures need matplotlib (``pip install "bptt[plot]"``), which the library does not.

Import the modules themselves, for example ``from bptt.experiments import worked_example``; this
package imports none of them, so that importing one does not load matplotlib for the others.
"""
