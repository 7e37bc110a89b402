from eval_pipelines.resources.data_dir import DataDirResource
from eval_pipelines.resources.demo_world import DemoWorldResource

__all__ = ["DataDirResource", "DemoWorldResource"]
