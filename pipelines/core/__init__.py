"""The pipeline itself: connector -> harmonise -> validate -> write -> lake -> warehouse."""
