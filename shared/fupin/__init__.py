"""fupin: the shared domain core of the poverty-alleviation backend (扶贫)."""
