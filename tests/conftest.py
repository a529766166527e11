"""Shared fixtures. Tests never touch the user's cache: dequantized models go to one folder per test session."""

import pytest


@pytest.fixture(scope="session")
def painters_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("painters-cache")
