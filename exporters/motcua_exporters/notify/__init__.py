"""motcua-notify: the notification bridge from Alertmanager to Zalo, ZNS and SMS."""
