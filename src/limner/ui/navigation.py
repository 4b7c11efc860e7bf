"""The studio's pages: file, title, icon and URL of each, in menu order.

Why constants: pages link to each other (Gallery -> "send to Edit", results -> "reuse these
settings"), and ``st.switch_page`` takes the page's path; naming each path once avoids typos
that would only show up as a broken button.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PageSpec:
    path: str  # relative to app.py, as st.Page and st.switch_page take it
    title: str
    icon: str
    url_path: str


LOGIN = PageSpec("views/login.py", "Sign in", ":material/login:", "login")
HOME = PageSpec("views/home.py", "Home", ":material/home:", "home")
GENERATE = PageSpec("views/generate.py", "Generate", ":material/brush:", "generate")
EDIT = PageSpec("views/edit.py", "Edit", ":material/auto_fix_high:", "edit")
CHARACTER = PageSpec("views/character.py", "Character", ":material/face:", "character")
PROMPT_LAB = PageSpec("views/prompt_lab.py", "Prompt lab / Batch", ":material/lightbulb:", "prompt-lab")
QUEUE = PageSpec("views/queue.py", "Queue", ":material/pending_actions:", "queue")
GALLERY = PageSpec("views/gallery.py", "Gallery", ":material/photo_library:", "gallery")
MODELS = PageSpec("views/models.py", "Models & training", ":material/model_training:", "models")
ARCHITECTURE = PageSpec("views/architecture.py", "Architecture", ":material/schema:", "architecture")

MENU: dict[str, tuple[PageSpec, ...]] = {
    "Create": (HOME, GENERATE, EDIT, CHARACTER, PROMPT_LAB),
    "Library": (GALLERY, QUEUE, MODELS),
    "Learn": (ARCHITECTURE,),
}
# Pages a signed-out visitor may see; any other page shows the sign-in form in its place, so a
# bookmarked /gallery opens the gallery right after signing in.
PUBLIC: frozenset[PageSpec] = frozenset({LOGIN, ARCHITECTURE})
