"""``python -m convviz_helpers.export OUT_DIR``: write the explorer's assets (``build_site``)."""

from . import main

main()
