"""Tools above the runtime: they build or judge what the show plays, and never run inside it.

train.py reproduces the builtin model's weights (`noclip train`), data.py renders its training
and held-out sets from the live scene, quality.py measures the model against its bars (`noclip
quality`), contact.py draws a contact sheet of the levels. They may import every runtime layer
(docs/ARCHITECTURE.md); nothing in the runtime imports them.
"""
