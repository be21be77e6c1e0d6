"""Django's format files (FORMAT_MODULE_PATH): whatever Django itself formats (the admin, a
`|date` without an argument, form fields) uses unlinker.core.display's formats too."""
