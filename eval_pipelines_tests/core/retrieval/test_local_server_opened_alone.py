"""An HTTP retriever served by a local backend opens without its backend among the ids asked
for: a Dask worker opens only the retriever its chunk needs."""

from eval_pipelines.core.paths import DataPaths
from eval_pipelines.core.retrieval.registry import open_retriever, open_retrievers


def test_demo_http_opens_alone_and_ranks_as_its_backend(world_copy: DataPaths) -> None:
    query = {"text": "red shoes"}
    with open_retriever(world_copy, "demo_http") as alone:
        [served] = alone.search_many([query], limit=5)
    with open_retrievers(world_copy, ["demo_better"]) as retrievers:
        [direct] = retrievers["demo_better"].search_many([query], limit=5)
    assert served.status == "completed", served.error
    assert [d.document_id for d in served.documents] == [d.document_id for d in direct.documents]
    assert served.documents
