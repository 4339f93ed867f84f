// qstrs specific to the k230test port (none: the module names come from k230net.c).
