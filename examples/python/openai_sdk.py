"""OpenAI's official Python SDK against Cesar: only the base URL changes.

    pip install openai
    python examples/python/openai_sdk.py http://127.0.0.1:8000 speech.ogg french.ogg [api-key]

Transcribes the first file, translates the second into English, then transcribes the first again as a stream,
and prints one JSON object with the three results (the tests read it).
"""

import json
import sys

from openai import OpenAI


def main() -> None:
    base_url, speech, foreign = sys.argv[1], sys.argv[2], sys.argv[3]
    api_key = sys.argv[4] if len(sys.argv) > 4 else "not-needed"
    client = OpenAI(base_url=f"{base_url}/v1", api_key=api_key, max_retries=0)

    with open(speech, "rb") as audio:
        transcription = client.audio.transcriptions.create(
            file=audio,
            model="whisper-1",
            response_format="verbose_json",
            timestamp_granularities=["word", "segment"],
        )
    with open(foreign, "rb") as audio:
        translation = client.audio.translations.create(file=audio, model="whisper-1")

    deltas = []
    done = None
    with open(speech, "rb") as audio:
        stream = client.audio.transcriptions.create(file=audio, model="whisper-1", stream=True)
        for event in stream:
            if event.type == "transcript.text.delta":
                deltas.append(event.delta)
            elif event.type == "transcript.text.done":
                done = event.text

    print(
        json.dumps(
            {
                "transcription": {
                    "text": transcription.text,
                    "language": transcription.language,
                    "duration": transcription.duration,
                    "segments": len(transcription.segments or []),
                    "words": [word.word for word in transcription.words or []],
                },
                "translation": translation.text,
                "stream": {"deltas": deltas, "done": done},
            }
        )
    )


if __name__ == "__main__":
    main()
