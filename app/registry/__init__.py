"""What Procore holds, as the service knows it: the resource types (`resources`) and their ids
(`ids`). Pure: imports nothing else of the service."""
