"""One importable module per corpus: its constants (citation, licence, homepage, labels, split layout) and tasks.

Installed as ``clinx_hub.dataset_scripts`` (``clinx_hub/dataset_scripts`` links to this folder),
never as a top-level ``dataset_scripts`` package. Each module fills in :class:`clinx_hub.task.Task`;
:mod:`clinx_hub.corpora` lists them. These are not ``datasets`` loading scripts (datasets >= 4 no
longer runs them); ``clinx data convert`` turns a task into a Hub-native parquet dataset.
"""
