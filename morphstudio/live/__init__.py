"""Live face edits: a camera or a video file through align -> encode -> edit -> generate -> blend back -> sinks.

``capture`` reads frames (newest-frame-wins for a camera, every frame in order for a file), ``smoothing`` is the
causal One Euro filter over the landmarks, ``pipeline`` runs the stages on threads joined by bounded queues,
``edits`` turns a scene's attribute tracks and deform loops (and ``--attr`` / ``--target``) into latent edits,
``blend`` pastes the generated face back, ``overlay`` draws the fps / latency line on the window.
"""
