"""Privacy building blocks: keyed tokens, plate attributes."""
