"""govhub doctor (体检): what the deployment and each account need before going live."""
