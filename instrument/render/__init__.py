"""GL: contexts (window / headless), shader programs, the compositor chain, the window."""
