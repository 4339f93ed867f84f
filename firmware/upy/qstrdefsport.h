// qstrs specific to the port (none: names come from the sources' MP_QSTR_* uses).
