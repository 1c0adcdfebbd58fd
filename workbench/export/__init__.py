"""Taking a trained run elsewhere: merged Hugging Face weights, a portable PEFT adapter, GGUF for
llama.cpp and Ollama, and a model card for each. `workbench.runs.export.export_run` puts the
pieces together; the modules here each write one kind of thing (all heavy imports are lazy):

    options     formats, dtypes, GGUF quantizations, default target, the equivalent command line
    source      what a run exports: its weights, base model (Hub id and local path), tokenizer, template
    merge       base + adapter merged in fp32, with progress
    hf          merged safetensors in a chosen dtype, sharded, with tokenizer and chat template
    adapter     the PEFT directory, naming the base by its Hub id
    gguf_file   a GGUF file written with the `gguf` package (llama and qwen2 families)
    ollama      the chat template as an Ollama Go template, and the Modelfile
    card        the model card (huggingface_hub ModelCard) of a run and of each export
    hub         --push-to-hub
"""
