pytest_plugins = [
    "tests.support.engine",
    "tests.support.datastores",
    "tests.support.llm",
    "tests.support.sandbox",
    "tests.support.control",
    "tests.support.chat",
    "tests.support.toxiproxy",
]
