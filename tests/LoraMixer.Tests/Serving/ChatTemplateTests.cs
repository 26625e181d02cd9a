using LoraMixer.Errors;
using LoraMixer.Serving;
using LoraMixer.Tokenization;

namespace LoraMixer.Tests.Serving;

/// <summary>The built-in chat templates, written out as the models' own Jinja templates render them, and their recognition.</summary>
public sealed class ChatTemplateTests
{
    // Ids are characters; BOS and EOS show as ⟨s⟩ and ⟨/s⟩, so a rendering reads as text.
    private sealed class TextTokenizer : ITokenizer
    {
        public int VocabSize => 70000;
        public int? BosId => 65000;
        public int? EosId => 65001;
        public IReadOnlyList<int> Encode(string text, bool addBos = true) => (addBos ? [65000] : Array.Empty<int>()).Concat(text.Select(c => (int)c)).ToArray();
        public string Decode(IReadOnlyList<int> ids, bool skipSpecialTokens = true) =>
            string.Concat(ids.Select(i => i == 65000 ? "⟨s⟩" : i == 65001 ? "⟨/s⟩" : ((char)i).ToString()));
    }

    private static readonly TextTokenizer Tokenizer = new();

    private static string Render(string template, params (string Role, string Content)[] turns) =>
        Tokenizer.Decode(ChatTemplate.Named(template).Encode(turns.Select(t => new ChatTurn(t.Role, t.Content)).ToArray(), Tokenizer));

    [Fact]
    public void ChatML_writes_im_start_blocks_and_opens_the_assistant_turn() =>
        Assert.Equal("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
            Render("chatml", ("system", "Be brief."), ("user", "Hi")));

    [Fact]
    public void Llama3_writes_headers_with_trimmed_content_after_BOS() =>
        Assert.Equal("⟨s⟩<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
            Render("llama3", ("user", " Hi \n")));

    [Fact]
    public void Llama2_puts_the_system_prompt_inside_the_first_instruction_and_closes_answers_with_EOS() =>
        Assert.Equal("⟨s⟩[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello ⟨/s⟩⟨s⟩[INST] More [/INST]",
            Render("llama2", ("system", "Be brief."), ("user", "Hi"), ("assistant", "Hello"), ("user", "More")));

    [Fact]
    public void Mistral_has_one_BOS_and_no_spaces_around_answers() =>
        Assert.Equal("⟨s⟩[INST] Hi [/INST]Hello⟨/s⟩[INST] More [/INST]",
            Render("mistral", ("user", "Hi"), ("assistant", "Hello"), ("user", "More")));

    [Fact]
    public void Developer_is_system_and_unknown_roles_are_refused()
    {
        Assert.Equal(Render("chatml", ("system", "x")), Render("chatml", ("developer", "x")));
        var e = Assert.Throws<ArgumentException>(() => Render("chatml", ("tool", "x")));
        Assert.Contains("tool", e.Message);
        Assert.Throws<ArgumentException>(() => Render("chatml"));
    }

    private static string ModelWith(string? chatTemplate)
    {
        string dir = TestPaths.NewTempDir();
        var config = new System.Text.Json.Nodes.JsonObject { ["eos_token"] = "</s>" };
        if (chatTemplate is not null) config["chat_template"] = chatTemplate;
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), config.ToJsonString());
        return dir;
    }

    [Theory]
    [InlineData("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}", "chatml")]
    [InlineData("{{ bos_token }}{% for m in messages %}{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\n\n' + m['content'] | trim + '<|eot_id|>' }}{% endfor %}", "llama3")]
    [InlineData("{% if messages[0]['role'] == 'system' %}{% set system_message = '<<SYS>>\\n' + messages[0]['content'] + '\\n<</SYS>>\\n\\n' %}{% endif %}{{ bos_token + '[INST] ' + content + ' [/INST]' }}", "llama2")]
    [InlineData("{{ bos_token }}{% for message in messages %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% endfor %}", "mistral")]
    public void The_template_is_recognised_from_tokenizer_config(string jinja, string expected) =>
        Assert.Equal(expected, ChatTemplate.FromModelFolder(ModelWith(jinja)).Name);

    [Fact]
    public void A_ChatML_default_system_prompt_is_taken_from_the_template()
    {
        const string qwen = "{%- if messages[0]['role'] != 'system' %}{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{%- endif %}"
                            + "{%- for message in messages %}{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}{%- endfor %}";
        var template = ChatTemplate.FromModelFolder(ModelWith(qwen));
        Assert.Equal("You are a helpful assistant.", template.DefaultSystemPrompt);
        Assert.StartsWith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi",
            Tokenizer.Decode(template.Encode([new ChatTurn("user", "Hi")], Tokenizer)));
        Assert.DoesNotContain("helpful", Tokenizer.Decode(template.Encode([new ChatTurn("system", "S"), new ChatTurn("user", "Hi")], Tokenizer)));
    }

    [Fact]
    public void An_unknown_template_is_an_error_naming_the_way_out_and_none_means_ChatML()
    {
        var e = Assert.Throws<ModelFormatException>(() => ChatTemplate.FromModelFolder(ModelWith("{{ messages | tojson }}")));
        Assert.Contains("--chat-template NAME", e.Message);
        Assert.Equal("llama3", ChatTemplate.FromModelFolder(ModelWith("{{ messages | tojson }}"), "llama3").Name);
        string? note = null;
        Assert.Equal("chatml", ChatTemplate.FromModelFolder(ModelWith(null), null, m => note = m).Name);
        Assert.Contains("--chat-template", note);
        Assert.Throws<ArgumentException>(() => ChatTemplate.Named("vicuna"));
    }
}
