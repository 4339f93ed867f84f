/*
 * Stand-in for MicroPython's extmod/modplatform.h, which the source distribution the firmware
 * builds from does not contain (it has py/ and shared/, no extmod/). py/modsys.c includes it
 * for the MICROPY_PLATFORM_* strings; this port needs none of them (sys.platform comes from
 * MICROPY_PY_SYS_PLATFORM, sys.implementation._machine from MICROPY_HW_*), so it is empty:
 * a use of one of them fails the build instead of being guessed here.
 */
