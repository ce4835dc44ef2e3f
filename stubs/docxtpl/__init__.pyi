# The part of docxtpl's API the bot uses (docxtpl ships no type hints).
from os import PathLike
from typing import IO, Any

class DocxTemplate:
    def __init__(self, template_file: str | PathLike[str] | IO[bytes]) -> None: ...
    def render(
        self,
        context: dict[str, Any],
        jinja_env: Any | None = ...,
        autoescape: bool = ...,
    ) -> None: ...
    def save(
        self, filename: str | PathLike[str] | IO[bytes], *args: Any, **kwargs: Any
    ) -> None: ...

class InlineImage:
    def __init__(
        self,
        tpl: DocxTemplate,
        image_descriptor: str | PathLike[str] | IO[bytes],
        width: int | None = ...,
        height: int | None = ...,
        anchor: str | None = ...,
    ) -> None: ...
