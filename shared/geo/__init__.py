"""Pure array code: tiles, density, privacy masks, the grid codec, rendering."""
