"""Container image references, checked against the grammar Docker and Kubernetes use.

The grammar is distribution/reference's (github.com/distribution/reference, reference.go):

    reference  := name [ ":" tag ] [ "@" digest ]
    name       := [domain '/'] path-component ['/' path-component]*
    domain     := domain-component ['.' domain-component]* [':' port-number]  (or [IPv6])
    path-component := alpha-numeric [separator alpha-numeric]*
    alpha-numeric  := /[a-z0-9]+/      separator := /[_.]|__|[-]+/
    tag        := /[\\w][\\w.-]{0,127}/
    digest     := algorithm ":" /[0-9a-fA-F]{32,}/
    algorithm  := /[A-Za-z][A-Za-z0-9]*([+._-][A-Za-z][A-Za-z0-9]*)*/

A reference reaches a Dockerfile (`FROM`), Helm values and pod specs: anything outside the
grammar (a newline that would start a `RUN` line, spaces, quotes) is refused here.
"""

from __future__ import annotations

import re

_COMPONENT = r"[a-z0-9]+(?:(?:[_.]|__|-+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9A-Fa-f:]+\])(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
REFERENCE = re.compile(
    rf"(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)"
    rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?"
)
_MAX_NAME = 255  # reference.go: NameTotalLengthMax


def check_image_reference(value: str) -> str:
    """`value` if it is a valid image reference; ValueError naming the rule otherwise."""
    match = REFERENCE.fullmatch(value)
    domain = match.group("domain") if match else None
    if domain and not ("." in domain or ":" in domain or domain == "localhost"):
        # No dot, port or localhost: Docker reads the first component as part of the path.
        match = None if not re.fullmatch(_COMPONENT, domain) else match
    name_length = len(value.split("@", 1)[0].rsplit(":", 1)[0]) if match else 0
    if match is None or name_length > _MAX_NAME:
        shown = value.encode("unicode_escape").decode("ascii")
        raise ValueError(
            f"'{shown}' is not a valid image reference: use [registry[:port]/]repository[:tag]"
            "[@sha256:digest] with lower-case repository components (e.g. "
            "nvcr.io/nvidia/tritonserver:24.10-py3)"
        )
    return value
