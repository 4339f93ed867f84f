//! System controller: USB resets and USB PHY host-mode setup.
