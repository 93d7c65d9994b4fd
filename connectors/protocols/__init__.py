"""The vendor protocols' authentication, each as the platform documents it: both sides (sign and verify), so the
pull clients, the collector and the vendor-platform simulator cannot drift apart."""
