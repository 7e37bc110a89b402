"""The launchpad's config for a request, derived from the request's model: same fields, defaults
and descriptions, so the launchpad never copies the schema. The door then parses it as any request."""

from __future__ import annotations

import types
from functools import cache
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from dagster import Config
from pydantic import BaseModel, Field, create_model
from pydantic_core import PydanticUndefined


def _config_type(annotation: Any) -> Any:
    """A model field's type as Dagster config can hold it (Literal -> str, a model -> its Config)."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _config_type(args[0])
    if origin is Literal:
        return str
    if origin in (Union, types.UnionType):
        converted = tuple(_config_type(arg) for arg in args)
        return Union[converted]  # noqa: UP007
    if origin is list:
        return list[_config_type(args[0])]
    if origin is dict:
        return dict[args[0], _config_type(args[1])]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return config_class_for(annotation)
    return annotation


@cache
def config_class_for(model: type[BaseModel]) -> type[Config]:
    """A Dagster Config class with the model's fields (validation stays with the model)."""
    fields: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        config_type = _config_type(field.annotation)
        if field.default_factory is not None:
            default = field.default_factory()
            if isinstance(default, BaseModel):
                nested = config_class_for(type(default))
                fields[name] = (config_type, Field(default_factory=nested))
                continue
            fields[name] = (config_type, Field(default_factory=field.default_factory))
        elif field.default is PydanticUndefined:
            fields[name] = (config_type, Field(description=field.description))
        else:
            fields[name] = (
                config_type,
                Field(default=field.default, description=field.description),
            )
    return create_model(f"{model.__name__}Config", __base__=Config, __doc__=model.__doc__, **fields)
