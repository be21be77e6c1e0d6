"""OAuth tokens at rest: Fernet-encrypted with the key(s) of UNLINKER_TOKEN_KEY."""

from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models


@cache
def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(key.encode()) for key in settings.UNLINKER_TOKEN_KEYS])


def encrypt(value: str) -> str:
    return _fernet().encrypt(value.encode()).decode()


def decrypt(value: str) -> str:
    return _fernet().decrypt(value.encode()).decode()


UNREADABLE = "tokens unreadable: restore the previous key or reconnect"


class Unreadable(str):
    """A stored token that no key of UNLINKER_TOKEN_KEY decrypts: the key was changed, or the
    one it was encrypted with was rotated out. To code that uses it, it is no token at all (an
    empty string); saved again, it is written back as the ciphertext it was read from, so that
    restoring the previous key brings it back."""

    ciphertext: str

    def __new__(cls, ciphertext: str):
        token = super().__new__(cls, "")
        token.ciphertext = ciphertext
        return token


class EncryptedTextField(models.TextField):
    """Stores Fernet ciphertext; Python code only ever sees the plain value (or Unreadable)."""

    def from_db_value(self, value, expression, connection):
        if value in (None, ""):
            return value
        try:
            return decrypt(value)
        except InvalidToken:
            return Unreadable(value)

    def get_prep_value(self, value):
        if isinstance(value, Unreadable):
            return value.ciphertext
        value = super().get_prep_value(value)
        if value in (None, ""):
            return value
        return encrypt(value)
