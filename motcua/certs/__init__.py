"""Digital certificates (chứng thư số) of the sites: the ledger\x27s operations and `motcua certs`."""
