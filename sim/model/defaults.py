"""Defaults several layers share, kept in a module with no imports so the command line can
read them without loading the simulator."""

# The article's assumed MFU (GPT-3's training MFU); the same figure as `[inference] mfu` in
# sim/data/article.toml (a test checks they agree). The default of every article step model.
ARTICLE_MFU = 0.213
