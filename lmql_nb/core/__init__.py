"""The bottom layer: result types, options as data, validation, paths, the async bridges."""
