"""Datasets held in memory as uint8 (N, C, H, W) tensors, by name: the MNIST family, CIFAR-10 and CelebA
through torchvision, Frey Face from its MATLAB file, a folder of the user's own images, and the built-in
shapes. registry.py says what a dataset is, catalog.py lists them, loading.py loads one split once per
process; places.py is where data may be read from."""
from vae.data import catalog  # noqa: F401  (fills the registry)
from vae.data.loading import (SPLITS, clear_cache, dataset_available, dataset_shape, expected_files, load_dataset,
                              load_for)
from vae.data.memory import InMemoryDataset, batch_iterator, class_counts, describe_shape
from vae.data.places import (ALLOWED_DATA_DIRS_ENV, DATA_DIR_ENV, FOLDER_CACHE, UPLOADS, DataFolderRefused,
                             allowed_data_dirs, check_data_dir, resolve_data_dir)
from vae.data.registry import (DatasetSpec, DatasetUnavailable, LoadRequest, UnknownDataset, dataset_names,
                               dataset_options, dataset_spec, register, unregister)

__all__ = ["ALLOWED_DATA_DIRS_ENV", "DATA_DIR_ENV", "FOLDER_CACHE", "SPLITS", "UPLOADS", "DataFolderRefused",
           "DatasetSpec", "DatasetUnavailable", "InMemoryDataset", "LoadRequest", "UnknownDataset", "allowed_data_dirs",
           "batch_iterator", "check_data_dir", "class_counts", "clear_cache", "dataset_available", "dataset_names",
           "dataset_options", "dataset_shape", "dataset_spec", "describe_shape", "expected_files", "load_dataset",
           "load_for", "register", "resolve_data_dir", "unregister"]
