"""Pure frame → frame transforms: decode, resolve, pair, and build the output rows."""
