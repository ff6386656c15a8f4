"""The local stack and the emulator: never installed into the production images."""
