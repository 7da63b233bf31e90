"""The app's pages, once: each page script with its title, section, icon and URL. The shell builds the
navigation from this table (pages/ui/shell.py), Home its links, and the tests and benchmarks their
lists of pages. Plain data: importing it costs nothing (no streamlit, no torch)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SECTIONS = ("Model", "Explore", "Teach")  # in the sidebar's order


@dataclass(frozen=True)
class PageEntry:
    """One page of the app."""

    script: str  # relative to app.py, as st.Page and st.switch_page take it: "pages/sliders.py"
    title: str  # the sidebar's label and the browser tab's title
    section: str  # one of SECTIONS: the sidebar's heading above it
    icon: str  # a material icon, ":material/tune:"
    default: bool = False  # the page at the app's root URL
    # Home's one-line invitation to the page, under the current model ("Drag through its latent space");
    # an Explore page with a pitch is one of Home's links.
    pitch: str = ""
    # One of the Explore pages a student's visit steps through in turn: the load benchmark's sessions
    # (bench/load.py) and the browserless-session test walk them, and tests/test_explore_pages.py covers
    # them. The traversals page is not on the tour (tests/test_traversals_page.py covers it).
    tour: bool = False

    @property
    def path(self) -> str:
        """The page's URL path (st.Page's default, the script's stem): "sliders" for /sliders."""
        return Path(self.script).stem


PAGES: tuple[PageEntry, ...] = (
    PageEntry("pages/home.py", "Home", "Model", ":material/home:", default=True),
    PageEntry("pages/train.py", "Train", "Model", ":material/model_training:"),
    PageEntry("pages/sliders.py", "Latent sliders", "Explore", ":material/tune:",
              pitch="Drag through its latent space", tour=True),
    PageEntry("pages/manifold.py", "Manifold", "Explore", ":material/grid_on:", pitch="The whole manifold", tour=True),
    PageEntry("pages/scatter.py", "Latent scatter", "Explore", ":material/scatter_plot:",
              pitch="See where each class lands", tour=True),
    PageEntry("pages/reconstructions.py", "Reconstructions", "Explore", ":material/compare:", tour=True),
    PageEntry("pages/traversals.py", "Traversals", "Explore", ":material/view_week:"),
    PageEntry("pages/directions.py", "Directions", "Explore", ":material/north_east:"),
    PageEntry("pages/compare.py", "Compare", "Teach", ":material/view_column:"),
    PageEntry("pages/replay.py", "Training replay", "Teach", ":material/replay:"),
)


def page(script_or_path: str) -> PageEntry:
    """The entry of a script ("pages/train.py") or a URL path ("train")."""
    for entry in PAGES:
        if script_or_path in (entry.script, entry.path):
            return entry
    raise KeyError(script_or_path)


def by_section() -> dict[str, list[PageEntry]]:
    """The pages under their sections, both in the sidebar's order."""
    return {section: [p for p in PAGES if p.section == section] for section in SECTIONS}
