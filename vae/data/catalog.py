"""Every dataset this project knows, one entry each, in the order the CLI and the Train form offer them.
A new dataset: its loader in a module of its own (as vae/data/celeba.py), and one entry here."""
from __future__ import annotations

from vae.data import shapes
from vae.data.celeba import CELEBA_SIZE, celeba_files, celeba_folders, load_celeba
from vae.data.frey import frey_files, load_frey
from vae.data.registry import DatasetSpec, lazy, register
from vae.data.torchvision_sets import (FASHION_CLASSES, KMNIST_CLASSES, MNIST_CLASSES, cifar10_files, mnist_files,
                                       torchvision_loader)

GREY_28 = (1, 28, 28)

for spec in (
    DatasetSpec("mnist", "MNIST digits", "MNIST", "LeCun et al. 1998", shape=GREY_28,
                load=torchvision_loader("mnist", "MNIST", MNIST_CLASSES, GREY_28), files=mnist_files("MNIST")),
    DatasetSpec("fashion-mnist", "Fashion-MNIST", "Fashion-MNIST", "Xiao et al. 2017 (Zalando)", shape=GREY_28,
                load=torchvision_loader("fashion-mnist", "FashionMNIST", FASHION_CLASSES, GREY_28),
                files=mnist_files("FashionMNIST")),
    DatasetSpec("kmnist", "Kuzushiji-MNIST", "KMNIST", "Clanuwat et al. 2018", shape=GREY_28,
                load=torchvision_loader("kmnist", "KMNIST", KMNIST_CLASSES, GREY_28), files=mnist_files("KMNIST")),
    DatasetSpec("shapes", "Shapes (built in, no download)", "Shapes", "this project, drawn from a seed",
                shape=(1, shapes.SIZE, shapes.SIZE), load=shapes.load_dataset, built_in=True),
    DatasetSpec("shapes-color", "Colour shapes (built in, no download)", "Colour shapes",
                "this project, drawn from a seed", shape=(3, shapes.SIZE, shapes.SIZE), load=shapes.load_colour_dataset,
                built_in=True),
    DatasetSpec("frey-face", "Frey Face (the paper's faces)", "Frey Face",
                "Brendan Frey, via Sam Roweis; Kingma & Welling 2013, Fig. 5", shape=(1, 28, 20), load=load_frey,
                files=frey_files),
    DatasetSpec("cifar10", "CIFAR-10 (colour, 32x32)", "CIFAR-10", "Krizhevsky 2009", shape=(3, 32, 32),
                load=torchvision_loader("cifar10", "CIFAR10", None, (3, 32, 32)), files=cifar10_files),
    DatasetSpec("celeba", "CelebA faces (colour, 64x64)", "CelebA", "Liu et al. 2015",
                shape=(3, CELEBA_SIZE, CELEBA_SIZE), load=load_celeba, files=celeba_files, folders=celeba_folders),
    DatasetSpec("folder", "Your own image folder", "Your image folder", "you", shape=None,
                load=lazy("vae.data.folders", "load_folder"), folders=lambda root: [root]),
):
    register(spec)
