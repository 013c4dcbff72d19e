"""One importable module per corpus: its constants (citation, licence, homepage, labels, split layout) and tasks.

These are not ``datasets`` loading scripts (datasets >= 4 no longer runs them); ``clinx_hub.corpora``
imports them, and ``clinx data convert`` turns a task into a Hub-native parquet dataset.
"""
