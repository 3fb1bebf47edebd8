"""The local sandbox: the real bot and mail agent driven from a web page (`aesh sandbox`)."""
